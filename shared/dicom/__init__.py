"""The DICOM byte layer every part of the relay shares: a file's header read
and written as bytes without its pixel data (`header`), the VR vocabulary and
the structural tags (`vocabulary`), character sets (`charset`), and the DIMSE
messages the relay encodes itself (`dimse`). pydicom supplies the data
dictionary, the VR definitions and the character set codecs; nothing here
knows about de-identification.
"""
