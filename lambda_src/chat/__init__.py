"""Runtime code shared by the three Lambda functions.

Layout: ``protocol`` (frames in and out), ``store`` (DynamoDB access),
``gateway`` (posting to connections), ``actions`` (what each client action does),
``auth`` (who a connecting client is), ``jwt`` (RS256 verification), ``log``.
Nothing here imports ``aws_cdk``; only the standard library and boto3 are used.
"""
