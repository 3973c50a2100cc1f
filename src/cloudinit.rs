//! Renders the NoCloud seed (meta-data, user-data, network-config) for a
//! resolved machine and builds the seed ISO. Arrives with the Cloud-init issue.
