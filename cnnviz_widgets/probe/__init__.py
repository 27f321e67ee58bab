"""Probe: layers, receptive fields, activations and the deconvnet for any torchvision-style CNN."""
from .layers import Layer
from .probe import Probe
from .receptive_field import ReceptiveField

__all__ = ["Layer", "Probe", "ReceptiveField"]
