"""Per-ABI reference pages: frame picture, register table, annotated listing."""
