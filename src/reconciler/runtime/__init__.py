"""The operator process and its plumbing: informers (list + watch), the work queue, leader
election, the event recorder, probes and metrics, the conversion webhook (`operator` ties them
together). Nothing here decides what a test needs: that is the controller's job.
"""
