#!/bin/bash
#PJM -N exp1-p0007-a1
#PJM -L rscgrp=cx-small
#PJM -L gpu=4
#PJM -L elapse=2:00:30
#PJM -o /scratch/u/exp1/p0007-a1/stdout.txt
#PJM -j
export ORCH_RESULT_FILE='/scratch/u/run 1/result.json'
export QUOTE='it'"'"'s'
cd /scratch/u/exp1/p0007-a1 || exit 97
exec python3 train.py --lr 1e-3 'a b;c'
