"""Check env/stats.py against Bailey & López de Prado's printed worked example and print the table.

    .venv/bin/python benchmarks/check_stats.py

'The Deflated Sharpe Ratio' (2014), numerical example: N = 100 trials whose annualised Sharpes
have variance 1/2; the selected strategy has an annualised Sharpe of 2.5 over T = 1,250 daily
returns (the paper annualises with 250 days), skewness -3 and kurtosis 10. The paper prints
SR0 = 0.1132 (non-annualised expected maximum Sharpe) and DSR = 0.9004.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from env.stats import deflated_sharpe_ratio, probabilistic_sharpe_ratio  # noqa: E402

PRINTED = {"sr0": 0.1132, "dsr": 0.9004}


def main() -> int:
    sr = 2.5 / math.sqrt(250)
    out = deflated_sharpe_ratio(sr, 1250, n_trials=100, sr_variance=0.5 / 250, skew=-3, kurtosis=10)
    psr0 = probabilistic_sharpe_ratio(sr, 1250, skew=-3, kurtosis=10)
    print(f"{'quantity':<34}{'paper':>10}{'env.stats':>14}{'match (4 dp)':>14}")
    ok = True
    for key, label in (("sr0", "SR0 (expected max, per day)"), ("dsr", "DSR")):
        match = round(out[key], 4) == PRINTED[key]
        ok &= match
        print(f"{label:<34}{PRINTED[key]:>10.4f}{out[key]:>14.6f}{'yes' if match else 'NO':>14}")
    print(f"{'PSR against 0 (not printed)':<34}{'':>10}{psr0:>14.6f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
