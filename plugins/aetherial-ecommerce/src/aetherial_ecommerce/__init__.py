"""aeth's ``ecommerce`` specialist: product recommendations, pricing, inventory, customer support,
sales analysis, product-attribute extraction and review sentiment.

The plugin entry point is :mod:`aetherial_ecommerce.plugin`; the specialist itself is built by
:func:`aetherial_ecommerce.specialist.build_specialist`.
"""

__version__ = "0.1.0"
