#!/bin/bash
#SBATCH --job-name=exp1-p0007-a1
#SBATCH --output="/runs/exp 1/p0007-a1/stdout.txt"
#SBATCH --error="/runs/exp 1/p0007-a1/stderr.txt"
#SBATCH --chdir="/runs/exp 1/p0007-a1"
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=4
#SBATCH --no-requeue
#SBATCH --time=61
#SBATCH --gres=gpu:2
export OMP_NUM_THREADS=4
export TAG='a b'
cd '/runs/exp 1/p0007-a1' || exit 97
exec python3 trial.py --x 'it'"'"'s 3'
