"""aeth's ``writing`` specialist: writing: blog posts, product descriptions, marketing copy, social posts and newsletters.

The plugin entry point is :mod:`aetherial_writing.plugin`; the specialist itself is built by
:func:`aetherial_writing.specialist.build_specialist`.
"""

__version__ = "0.1.0"
