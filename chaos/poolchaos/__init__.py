"""Chaos Toolkit actions and probes for the local stack (`STACK_CHAOS=1 make up`), used by the experiments in
chaos/experiments/ (`make chaos`, chaos/run.sh).

  * `stack`: where the stack is (its env: `scripts/stack.sh env`), component pids, restarts, the experiment's
    output folder (CHAOS_OUT) and its fault marks;
  * `actions`: the faults (SIGKILL, SIGSTOP/SIGCONT, stop, graceful broker restart, faultproxy modes) and
    the background mixed load with its monitor sampler;
  * `probes`: the measured steady-state hypotheses (relay availability and p99 during the faults; every
    acknowledged event stored and counted once; the monitor's desired scale).
"""
