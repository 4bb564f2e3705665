"""The top of the app graph: each role's home page and the demo data, which assemble every other app.
Nothing imports ``portal``; it may import any app (docs/architecture.md)."""
