"""The layer catalogue and the OGC providers derived from it."""

from layers.catalogue import LAYERS, get_layer, layer_ids
from layers.model import Access, Field, Layer, Style

__all__ = ["LAYERS", "Access", "Field", "Layer", "Style", "get_layer", "layer_ids"]
