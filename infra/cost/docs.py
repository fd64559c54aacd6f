"""Where the generated tables live in README.md and docs/cost.md, and how `--write-docs` replaces them."""

from __future__ import annotations

README_SECTION = "## Cost at idle"
BLOCK_START = "<!-- generated: python -m infra.cost --markdown details -->"
BLOCK_END = "<!-- end generated -->"


class DocsError(Exception):
    """A document lacks the place its generated table goes; str(err) says which and what is missing."""


def readme_table(readme: str) -> str:
    """The Markdown table in README's "Cost at idle" section (its first run of lines starting with '|')."""
    lines = _section(readme).splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        raise DocsError(f"README.md: no table in the '{README_SECTION}' section")
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def with_readme_table(readme: str, table: str) -> str:
    section = _section(readme)
    return readme.replace(section, section.replace(readme_table(readme), table, 1), 1)


def generated_block(doc: str) -> str:
    if BLOCK_START not in doc or BLOCK_END not in doc.split(BLOCK_START, 1)[1]:
        raise DocsError(f"docs/cost.md: the markers '{BLOCK_START}' and '{BLOCK_END}' are missing or out of order")
    return doc.split(BLOCK_START, 1)[1].split(BLOCK_END, 1)[0].strip()


def with_generated_block(doc: str, block: str) -> str:
    head, rest = doc.split(BLOCK_START, 1)
    generated_block(doc)  # checks the markers
    tail = rest.split(BLOCK_END, 1)[1]
    return f"{head}{BLOCK_START}\n\n{block}\n\n{BLOCK_END}{tail}"


def _section(readme: str) -> str:
    if f"\n{README_SECTION}\n" not in readme:
        raise DocsError(f"README.md: no '{README_SECTION}' section")
    return readme.split(f"\n{README_SECTION}\n", 1)[1].split("\n## ", 1)[0]
