/** This SDK's version, sent in the client's user-agent. */
export const SDK_VERSION = "0.1.0";
