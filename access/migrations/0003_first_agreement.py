"""The first data use agreement, so that every installation can take requests from its first day."""

import hashlib

from django.db import migrations

TITLE = "MedHarm data use agreement"
BODY = """\
By signing this agreement you, the researcher named in your credentialed profile, agree that:

1. You will use the MedHarm restricted data only for the research purpose stated in your request,
   and only for research that aims to make medical AI systems safer.
2. You will not share the data, or any part of it that could be used to reconstruct queries or
   responses, with anyone who has not been granted access by the MedHarm data committee.
3. You will not use the data to build, test or improve systems meant to cause harm, and you will
   not publish query text or model responses verbatim; aggregate figures and short paraphrases that
   carry no actionable detail are allowed.
4. You will keep the data on systems protected by access control, and delete it when your grant
   ends, is revoked, or your purpose is complete, whichever comes first.
5. You will report any breach of this agreement, or any loss of the data, to the data committee
   within 72 hours.
6. You will cite the MedHarm benchmark in any publication that uses the data.
7. The data committee may revoke your access at any time; access is logged and audited.
"""


def create(apps, schema_editor):
    DataUseAgreement = apps.get_model("access", "DataUseAgreement")
    if not DataUseAgreement.objects.exists():
        DataUseAgreement.objects.create(
            version=1, title=TITLE, body=BODY, content_hash=hashlib.sha256(BODY.encode()).hexdigest()
        )


class Migration(migrations.Migration):
    dependencies = [("access", "0002_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
