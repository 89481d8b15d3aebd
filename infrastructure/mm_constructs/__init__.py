"""One construct per concern; the stacks in `infrastructure/stacks/` only wire them together."""
