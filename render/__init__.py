"""C-arm geometry, DRR rendering, instrument projection, the image chain and dose. No Qt.

The parallel numba kernels (the DRR) run on OpenMP threads. By default libgomp's idle threads
spin-wait after every parallel region, which on the 2-core machines fluorosim runs on takes a
core from the serial image chain that follows (and from other programs): measured on a loaded
2-core machine (load ≈4, three alternating pairs of runs, 16 poses each), a new pose took
81–91 ms CPU and 112–144 ms wall (median) with passive waiting against 93–115 ms CPU and
125–165 ms wall with libgomp's default. So unless the user chose otherwise, idle OpenMP threads
sleep (set before libgomp is first loaded, which happens at the first parallel call, after this
package is imported).
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
