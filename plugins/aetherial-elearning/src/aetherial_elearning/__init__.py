"""aeth's ``elearning`` specialist: e-learning: course outlines, quiz generation, lesson plans, assessment and learning paths.

The plugin entry point is :mod:`aetherial_elearning.plugin`; the specialist itself is built by
:func:`aetherial_elearning.specialist.build_specialist`.
"""

__version__ = "0.1.0"
