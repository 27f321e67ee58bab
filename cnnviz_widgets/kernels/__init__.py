"""Kernels: take a Probe and tensors, return tensors, numpy arrays or small dataclasses."""
