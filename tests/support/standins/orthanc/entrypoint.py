"""As the orthancteam/orthanc image does: ORTHANC__SOME_SETTING=value sets SomeSetting
(JSON values parsed), DICOM_WEB_PLUGIN_ENABLED=true loads the DICOMweb plugin."""

import json
import os

config: dict[str, object] = {
    "StorageDirectory": "/var/lib/orthanc/db", "IndexDirectory": "/var/lib/orthanc/db",
    "HttpPort": 8042, "DicomPort": 4242, "RemoteAccessAllowed": True, "Plugins": [],
}
for key, value in os.environ.items():
    if key.startswith("ORTHANC__"):
        name = "".join(part.capitalize() for part in key.removeprefix("ORTHANC__").split("_"))
        try:
            config[name] = json.loads(value)
        except ValueError:
            config[name] = value
if os.environ.get("DICOM_WEB_PLUGIN_ENABLED") == "true":
    config["Plugins"] = ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"]
    config["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/"}
with open("/tmp/orthanc.json", "w") as file:
    json.dump(config, file)
os.execv("/usr/sbin/Orthanc", ["Orthanc", "/tmp/orthanc.json"])
