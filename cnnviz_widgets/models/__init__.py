"""The model zoo: torchvision's VGG16 and AlexNet and the paper's AlexNet variant."""
from .alexnet_paper import AlexNetPaper
from .zoo import MODELS, imagenet_categories, load_model

__all__ = ["AlexNetPaper", "MODELS", "imagenet_categories", "load_model"]
