/** The appliance's release, as `/metrics` (`knockgate_build_info`) reports it. Raise it per release. */
export const APPLIANCE_VERSION = "0.9.0";
