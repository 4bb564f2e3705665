"""Writes of the annotation app, one module per concept; import services from their modules."""
