"""The type-aware SOAP value reader, now in vcenter/soap_values.py (shared with the
remediator's plain-XML reads); re-exported here for the exporter's modules."""

from vcenter.soap_values import XSI_TYPE, is_a, value, wsdl_type

__all__ = ["XSI_TYPE", "is_a", "value", "wsdl_type"]
