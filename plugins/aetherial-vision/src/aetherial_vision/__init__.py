"""aeth's ``vision`` specialist: image description, visual Q&A, OCR and image classification.

The plugin entry point is :mod:`aetherial_vision.plugin`; the specialist itself is built by
:func:`aetherial_vision.specialist.build_specialist`. Answers come from a vision-language model
when one can be loaded (:mod:`aetherial_vision.vlm`), else, offline, from OCR
(:mod:`aetherial_vision.ocr`) and aeth's text model (:mod:`aetherial_vision.generator`).
"""

__version__ = "0.1.0"
