"""Activities: the render activity and the renderers behind it."""
