"""aeth's ``coding`` specialist: code generation, explanation, debugging, review and documentation.

The plugin entry point is :mod:`aetherial_coding.plugin`; the specialist itself is built by
:func:`aetherial_coding.specialist.build_specialist`.
"""

__version__ = "0.1.0"
