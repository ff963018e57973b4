"""README's generated blocks are what `relalign report --markdown` makes from the committed runs,
so a number or a sentence there cannot drift from the results."""

import re

from relalign.cli import END_TO_END, README_CONDITIONS, README_FINDINGS, README_TABLE
from relalign.compare import design_markdown
from relalign.params import REPO_ROOT
from relalign.summary import find_runs, findings_markdown, markdown_table

README = (REPO_ROOT / "README.md").read_text()
RUNS = find_runs(REPO_ROOT / "results")


def _block(markers):
    start, end = markers
    found = re.search(re.escape(start) + r"\n(.*?)\n" + re.escape(end), README, flags=re.S)
    assert found, f"README has no block between {start} and {end}"
    return found.group(1)


def test_readme_table_is_made_from_the_committed_runs():
    assert _block(README_TABLE) == markdown_table(RUNS)


def test_readme_significance_calls_are_made_from_the_committed_runs():
    assert _block(README_FINDINGS) == findings_markdown(RUNS)


def test_readme_design_conditions_are_made_from_the_committed_runs():
    assert _block(README_CONDITIONS) == design_markdown(RUNS, REPO_ROOT / END_TO_END)


def test_readme_links_resolve():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if "://" not in target:
            assert (REPO_ROOT / target).exists(), f"README links to {target}, which does not exist"
