"""The interop tests (`make interop`) use the integration harness: tern_harness and
s2s_interop from tests/integration."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
