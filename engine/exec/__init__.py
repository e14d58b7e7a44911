"""Execution (spec chapter 4): the two runtime models' interpreters, their compiled tier, and the
numeric operations they share."""
