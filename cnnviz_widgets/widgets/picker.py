"""The image picker that every widget showing one picture at a time shares: its synced traits, its default pictures
(the bundled photos) and the picture at an index, range-checked. Its JavaScript twin is ``renderPicker`` in
js/_shared.js; uploads add to the same list (:class:`~cnnviz_widgets.widgets.uploads.TakesPictures`)."""
from __future__ import annotations

from typing import Any

import traitlets

from ..errors import ImageError
from ..images import sample_images
from ..imageset import ImageSet, load_images


def widget_images(images: Any) -> ImageSet:
    """A widget's pictures: whatever ``cv.load_images`` takes, or the bundled photos when ``images`` is None."""
    return load_images(sample_images() if images is None else images)


class PicksImage(traitlets.HasTraits):
    """Mixin: a list of pictures (``_images``, set once the widget is ready) with a picker over it."""

    image_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    image_index = traitlets.Int(0).tag(sync=True)  # shared: link the pickers of several widgets
    shown_image = traitlets.Int(-1).tag(sync=True)  # the image the pictures now shown belong to

    _images: ImageSet | None = None

    def picture(self, index: int) -> tuple[Any, str]:
        """The raw picture at ``index`` and its name (each network decodes it at its own size)."""
        images = self._images
        if images is None or not 0 <= index < len(images):
            raise ImageError(f"image_index={index} is out of range: there are {0 if images is None else len(images)} images.")
        return images.raw(index), images.names[index]
