"""The model zoo: torchvision's VGG16 and AlexNet and the paper's AlexNet variant."""
from .alexnet_paper import AlexNetPaper
from .zoo import MODELS, banner, imagenet_categories, load_model, load_model_or_random

__all__ = ["AlexNetPaper", "MODELS", "banner", "imagenet_categories", "load_model", "load_model_or_random"]
