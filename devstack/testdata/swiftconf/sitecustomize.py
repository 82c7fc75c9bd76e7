# Points Swift's servers of devstack_test.go at the test's swift.conf.
#
# Swift 2.30 reads its storage policies and constraints from
# swift.common.utils.SWIFT_CONF_FILE, fixed at /etc/swift/swift.conf: a
# server's swift_dir moves its rings, not swift.conf, and no variable moves
# it (only swift-recon calls set_swift_dir). /etc/swift/swift.conf is the
# project stack's, without DevStack's policy 1 (silver). With this directory
# on PYTHONPATH, Python imports this module before the server's script, so
# storage_policy and constraints read $SWIFT_CONF_FILE when first imported.
import os

_conf = os.environ.get("SWIFT_CONF_FILE")
if _conf:
    from swift.common import utils

    utils.SWIFT_CONF_FILE = _conf
