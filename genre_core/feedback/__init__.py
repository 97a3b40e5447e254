"""The feedback loop: how the published lists did against the interactions that arrived after them."""
