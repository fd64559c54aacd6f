"""One construct per concern; stacks compose them and make the grants where they meet."""
