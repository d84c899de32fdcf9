"""Helpers shared by the tests, kept out of `test_*` names so pytest never collects them as tests.

`training`: the memoised tiny training runs that the training, evaluation and ablation tests share.
`pipeline`: small real clips, running a pipeline to its end, reading its outputs back.
`processes`: making sure no child process outlives its test.
"""
