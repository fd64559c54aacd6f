"""Architecture diagrams generated from the synthesized templates (`make diagram`).

Reads a cloud assembly (cdk.out) as JSON and never imports the CDK: `assembly` loads one stage's templates and
the construct paths of their resources (tree.json), `references` finds what a template value refers to,
`graph` turns the templates into drawn resources and the edges between them, `layers` says which resource types
are drawn, how they are labelled and which stacks make up each layer, and `dot` writes one Graphviz DOT file per
layer plus a stack-level overview. `tools/render_svg.mjs` renders the DOT to SVG with Graphviz compiled to
WebAssembly.
"""
