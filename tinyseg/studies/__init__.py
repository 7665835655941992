"""Research that uses the library: the studies behind the walkthroughs and the benchmark report.

* :mod:`~tinyseg.studies.cures` -- the cures' study: does a wider network, more data, DeepLab or
  the dense CRF fix the post's coarse FCN-32s boundaries? (``examples/walkthrough_cures.py``)
* :mod:`~tinyseg.studies.crf_rnn` -- the CRF-as-RNN study: the post-hoc CRF against the CRF
  trained end to end (Zheng et al. 2015). (``examples/walkthrough_crf_rnn.py``)

Nothing in the library imports this package.
"""
