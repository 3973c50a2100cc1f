//! Renders a resolved machine into libvirt domain XML, including lvlab's
//! ownership metadata. Arrives with the Machines issue.
