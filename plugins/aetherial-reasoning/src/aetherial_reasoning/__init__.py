"""aeth's ``reasoning`` specialist: reasoning: math word problems, logic puzzles, analysis and planning.

The plugin entry point is :mod:`aetherial_reasoning.plugin`; the specialist itself is built by
:func:`aetherial_reasoning.specialist.build_specialist`.
"""

__version__ = "0.1.0"
