"""Architecture diagrams generated from the synthesized templates (`make diagram`).

Reads a cloud assembly (cdk.out) as JSON and never imports the CDK: `assembly` loads one stage's templates,
`graph` turns them into resources and the references between them, `layers` says which resource types are
drawn, how they are labelled and which stacks make up each layer, and `dot` writes one Graphviz DOT file per
layer. `tools/render_svg.mjs` renders the DOT to SVG with Graphviz compiled to WebAssembly.
"""
