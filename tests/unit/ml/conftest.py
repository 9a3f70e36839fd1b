"""Settings for the ml tests that must be in place before torch is imported."""
import os

# On a shared machine OpenMP workers that spin while waiting make small torch
# jobs 4-20x slower (measured: the pipeline contract test takes 90 s instead of
# 22 s on the 2-core dev box under load). Sleeping workers cost nothing when
# the machine is idle. Only effective if nothing imported torch earlier.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
