# Two entry points, both self-installing: `make demo` (the main job) and `make test`.
# The virtual environment is created on first use and reused while pyproject.toml and
# constraints.txt are unchanged.
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS := .[solvers,spread,test,ray]

.PHONY: install test demo bench clean

install: $(STAMP)

# Where a CUDA build of torch is already installed (the GPU machines), the venv sees it through
# --system-site-packages and pip runs without the CPU pin, so that torch is kept. Everywhere else
# every pip call carries constraints.txt, which pins the CPU build of torch.
$(STAMP): pyproject.toml constraints.txt
	@if python3 -c "import sys, torch; sys.exit(0 if torch.version.cuda else 1)" 2>/dev/null; then \
		echo "CUDA torch found: keeping it"; \
		python3 -m venv --system-site-packages $(VENV) && \
		$(PY) -m pip install -q -e '$(EXTRAS)'; \
	else \
		python3 -m venv $(VENV) && \
		$(PY) -m pip install -q -c constraints.txt -e '$(EXTRAS)'; \
	fi
	@touch $(STAMP)

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
test: $(STAMP)
	@$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

demo: $(STAMP)
	$(VENV)/bin/arena demo
	@echo "(the arena command lives in $(VENV)/bin: run '. $(VENV)/bin/activate' first)"

bench: $(STAMP)
	$(VENV)/bin/arena bench env --scenario pp7,3m --batch 1,64,1024,4096
	$(VENV)/bin/arena bench env --scenario 3m,pp7 --batch 8 --compile --steps 800
	$(VENV)/bin/arena bench matrix --scenario 3m
	$(PY) benchmarks/solve.py
	$(PY) benchmarks/store.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
