# make demo   -- set up .venv and run the study with params/default.yaml
# make test   -- set up .venv and run the test suite (pytest + nbval on the notebooks)
# make lab    -- JupyterLab on notebooks/ with the project's kernel ("Python (relalign)")
# make lock   -- re-write requirements.lock (the exact versions) from the packages installed in .venv

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
SETUP  := $(VENV)/.setup-done
LOCK   := requirements.lock
NBVAL  := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: setup lock demo test pytest nbval lab notebooks clean

$(SETUP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build on this class of machine, so nothing pulls a CUDA build
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# then the exact versions the committed results were made with (pyproject.toml keeps ranges)
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	# then the project; its dependencies are held to the lock, which satisfies them (a conflict fails here)
	$(BIN)/python -m pip install --quiet -e '.[dev]' -c $(LOCK)
	$(BIN)/python -m ipykernel install --sys-prefix --name relalign --display-name "Python (relalign)" >/dev/null
	touch $(SETUP)

setup: $(SETUP)

# After changing a package in .venv on purpose: the lock follows (relalign.provenance.lock_lines says what
# it leaves out), and the next `make setup` installs from it.
lock:
	$(BIN)/python -m relalign.provenance --lock > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)

demo: setup
	$(BIN)/relalign assets install params/default.yaml
	# re-creates the committed results/sciq/default; `git diff results/` shows whether your numbers match
	$(BIN)/relalign run params/default.yaml --replace

test: setup
	$(BIN)/relalign assets install params/smoke.yaml
	$(MAKE) pytest nbval

pytest:
	$(BIN)/python -m pytest tests

nbval:
	$(BIN)/python -m pytest $(NBVAL) notebooks

lab: setup
	$(BIN)/jupyter lab notebooks/

# Re-execute the tutorial notebooks in place with their default (smoke) parameters, so that their
# stored outputs, which nbval compares, come from the current code.
notebooks: setup
	$(BIN)/relalign assets install params/smoke.yaml
	cd notebooks && for nb in 0*.ipynb; do ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.kernel_name=python3 "$$nb" || exit 1; done

clean:
	rm -rf $(VENV) .cache
