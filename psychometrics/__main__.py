"""``python -m psychometrics calibrate|score|item-analysis ...``"""

from psychometrics.cli import main

main(prog_name="python -m psychometrics")
