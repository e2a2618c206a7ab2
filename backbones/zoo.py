"""The model zoo: every released ConvNeXt checkpoint our configs can use, by name.

The table is ``backbones/data/zoo.json`` (the single source; its ``_about`` says what each
field means). The detection and segmentation figures are not repeated there: they are the
paper's, looked up in ``paper.json`` through the entry's config
(:func:`backbones.analysis.paper_metrics`).
"""
import dataclasses
import difflib
import json
import os
import os.path as osp
from functools import lru_cache
from typing import Dict, List, Optional

#: The zoo shipped with the package.
ZOO_FILE = osp.join(osp.dirname(osp.abspath(__file__)), 'data', 'zoo.json')
#: Environment variable: a base URL that replaces the zoo's (a mirror behind a firewall).
MIRROR_ENV = 'CONVNEXT_ZOO_MIRROR'
#: Scheme naming a zoo entry wherever a checkpoint path is accepted: ``zoo://NAME``.
SCHEME = 'zoo://'
TASKS = ('classification', 'pretraining', 'detection', 'segmentation')
#: Config folders of the tasks (``pretraining`` weights have no config of their own).
CONFIG_DIRS = dict(classification='classification', detection='detection',
                   segmentation='segmentation')


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """One released checkpoint (the fields of ``zoo.json``; see its ``_about``)."""

    name: str
    task: str
    url: str
    format: str
    arch: str
    pretrain: str
    config: Optional[str] = None
    resolution: Optional[int] = None
    top1: Optional[float] = None
    ema: bool = False
    v2: bool = False
    backbone: Optional[str] = None
    sha256: Optional[str] = None

    @property
    def filename(self) -> str:
        """The file name under which the checkpoint is cached (the URL's last part)."""
        return self.url.rsplit('/', 1)[-1]

    @property
    def config_path(self) -> Optional[str]:
        """Our config file for this entry, relative to the repository root (or None)."""
        if not self.config or self.task not in CONFIG_DIRS:
            return None
        return osp.join('configs', CONFIG_DIRS[self.task], self.config + '.py')


class Zoo:
    """A zoo table, loaded from a ``zoo.json`` file.

    Args:
        path: The JSON file (default: the package's :data:`ZOO_FILE`).

    Raises:
        ValueError: The file is not a zoo table; the message names the file and the entry.
    """

    def __init__(self, path: str = ZOO_FILE) -> None:
        self.path = path
        try:
            with open(path) as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'zoo file {path!r} is not valid JSON: {e}') from None
        if not isinstance(data, dict) or not isinstance(data.get('models'), dict):
            raise ValueError(f'zoo file {path!r} has no "models" table')
        self.base_url: str = data.get('base_url', '')
        fields = {f.name for f in dataclasses.fields(ZooEntry)}
        self.entries: Dict[str, ZooEntry] = {}
        for name, item in data['models'].items():
            unknown = set(item) - fields
            missing = {'task', 'url', 'format', 'arch', 'pretrain'} - set(item)
            if unknown or missing or item.get('task') not in TASKS:
                raise ValueError(
                    f'zoo file {path!r}, entry {name!r}: '
                    + '; '.join(filter(None, [
                        unknown and f'unknown fields {sorted(unknown)}',
                        missing and f'missing fields {sorted(missing)}',
                        item.get('task') not in TASKS and
                        f'task {item.get("task")!r} is not one of {", ".join(TASKS)}'])))
            self.entries[name] = ZooEntry(name=name, **item)

    def __iter__(self):
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def select(self, task: Optional[str] = None) -> List[ZooEntry]:
        """The entries of one task (all when None), in table order."""
        return [e for e in self if task is None or e.task == task]

    def get(self, name: str) -> ZooEntry:
        """Find an entry by its name, ``zoo://NAME``, its URL or its file name, or (for a
        detection or segmentation model) by its config stem with or without the dataset
        suffix (``cascade_convnext_t_coco``, ``cascade_convnext_t``).

        Raises:
            KeyError: No entry; the message lists the closest names.
        """
        key = name[len(SCHEME):] if name.startswith(SCHEME) else name
        if key in self.entries:
            return self.entries[key]
        for entry in self:
            if key in (entry.url, entry.filename, osp.splitext(entry.filename)[0]):
                return entry
        dense = [e for e in self if e.task in ('detection', 'segmentation') and e.config]
        for entry in dense:
            stem = entry.config
            if key in (stem, stem.rsplit('_coco', 1)[0], stem.rsplit('_ade20k', 1)[0]):
                return entry
        close = difflib.get_close_matches(key, list(self.entries), n=4, cutoff=0.5)
        raise KeyError(f'{name!r} is not in the model zoo {self.path!r}'
                       + (f'; closest: {", ".join(close)}' if close else '')
                       + ' (`python tools/download.py --list` shows every entry)')

    def find_url(self, url: str) -> Optional[ZooEntry]:
        """The entry released at ``url`` (or at its mirrored form), or None."""
        for entry in self:
            if url in (entry.url, mirrored(entry.url, self.base_url)):
                return entry
        return None


@lru_cache(maxsize=8)
def load_zoo(path: str = ZOO_FILE) -> Zoo:
    """The zoo table in ``path`` (cached per path)."""
    return Zoo(path)


def mirrored(url: str, base_url: Optional[str] = None) -> str:
    """``url`` with the zoo's base URL replaced by the mirror in ``$CONVNEXT_ZOO_MIRROR``.

    Args:
        url: A checkpoint URL.
        base_url: The prefix a mirror replaces (default: the package zoo's base URL).

    Returns:
        The URL to download from: unchanged when no mirror is set or ``url`` is not under
        the base URL.
    """
    mirror = os.environ.get(MIRROR_ENV, '').strip()
    base = load_zoo().base_url if base_url is None else base_url
    if not mirror or not base or not url.startswith(base):
        return url
    return mirror.rstrip('/') + '/' + url[len(base):]
