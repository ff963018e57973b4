"""README's and docs' generated blocks are what `relalign report --write` makes from the
committed runs (relalign.docblocks), so a number or a sentence there cannot drift from the results."""

import re

import pytest

from relalign import docblocks
from relalign.params import REPO_ROOT
from relalign.summary import find_runs, intervals, power_table

README = (REPO_ROOT / "README.md").read_text()
RUNS = find_runs(REPO_ROOT / "results")


@pytest.fixture(scope="module")
def computed():
    return intervals(RUNS), power_table(RUNS)


@pytest.fixture(scope="module")
def readme_blocks(computed):
    return docblocks.readme_blocks(RUNS, REPO_ROOT, *computed)


@pytest.mark.parametrize("name", ["summary-table", "findings", "conditions"])
def test_readme_blocks_are_made_from_the_committed_runs(name, readme_blocks):
    assert docblocks.block(README, name) == readme_blocks[name]


def test_docs_blocks_are_made_from_the_committed_runs(computed):
    made = docblocks.docs_blocks(RUNS, *computed)
    assert made["docs/results.md"], "no study of docs/results.md has runs"
    for doc, blocks in made.items():
        text = (REPO_ROOT / doc).read_text()
        for name, body in blocks.items():
            assert docblocks.block(text, name) == body, f"{doc}'s block {name} is not what the runs give"


def test_filling_replaces_only_the_block():
    text = "a\n<!-- x:start -->\nold\n<!-- x:end -->\nb\n"
    assert docblocks.filled(text, {"x": "new"}) == "a\n<!-- x:start -->\nnew\n<!-- x:end -->\nb\n"
    assert docblocks.block(docblocks.filled(text, {"x": "new"}), "x") == "new"
    with pytest.raises(ValueError, match="no <!-- y:start -->"):
        docblocks.filled(text, {"y": "new"})


def test_readme_links_resolve():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if "://" not in target:
            assert (REPO_ROOT / target).exists(), f"README links to {target}, which does not exist"
