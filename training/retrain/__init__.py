"""The retraining loop: export failures, sample candidates, judge, build pairs, DPO, one round."""
