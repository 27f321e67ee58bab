"""Probe: layers, receptive fields, activations and the deconvnet for any torchvision-style CNN."""
from .layers import Layer
from .probe import Probe
from .randomize import randomize_layers
from .receptive_field import ReceptiveField

__all__ = ["Layer", "Probe", "ReceptiveField", "randomize_layers"]
