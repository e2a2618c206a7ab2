from .layer_decay import LayerDecayOptimizerConstructor, get_layer_ids, lr_scale

__all__ = ['LayerDecayOptimizerConstructor', 'get_layer_ids', 'lr_scale']
