package templates

import "strconv"

// Field identifies a macro name known at parse time. Parse resolves every
// name to a Field, so rendering indexes an array instead of looking up a map.
type Field uint8

// The macro names, in the order Fields returns them.
const (
	FieldEventID Field = iota + 1
	FieldEvent
	FieldTimestamp
	FieldAppID
	FieldClickID
	FieldPartner
	FieldCampaignID
	FieldCampaign
	FieldAdgroupID
	FieldAdgroup
	FieldCreativeID
	FieldCreative
	FieldSiteID
	FieldSub1
	FieldSub2
	FieldSub3
	FieldSub4
	FieldSub5
	FieldIDFA
	FieldIDFV
	FieldGAID
	FieldAndroidID
	FieldIP
	FieldUserAgent
	FieldOS
	FieldOSVersion
	FieldCountry
	FieldCustomerUserID
	FieldEmail
	FieldRevenue
	FieldCurrency
	FieldTransactionID
	FieldStatus
	FieldClickTime
	FieldInstallTime
	FieldDeliveryID
	FieldAttempt
	numFields
)

// fieldNames is indexed by Field; index 0 is the invalid zero Field.
var fieldNames = [numFields]string{
	FieldEventID:        "event_id",
	FieldEvent:          "event",
	FieldTimestamp:      "timestamp",
	FieldAppID:          "app_id",
	FieldClickID:        "click_id",
	FieldPartner:        "partner",
	FieldCampaignID:     "campaign_id",
	FieldCampaign:       "campaign",
	FieldAdgroupID:      "adgroup_id",
	FieldAdgroup:        "adgroup",
	FieldCreativeID:     "creative_id",
	FieldCreative:       "creative",
	FieldSiteID:         "site_id",
	FieldSub1:           "sub1",
	FieldSub2:           "sub2",
	FieldSub3:           "sub3",
	FieldSub4:           "sub4",
	FieldSub5:           "sub5",
	FieldIDFA:           "idfa",
	FieldIDFV:           "idfv",
	FieldGAID:           "gaid",
	FieldAndroidID:      "android_id",
	FieldIP:             "ip",
	FieldUserAgent:      "user_agent",
	FieldOS:             "os",
	FieldOSVersion:      "os_version",
	FieldCountry:        "country",
	FieldCustomerUserID: "customer_user_id",
	FieldEmail:          "email",
	FieldRevenue:        "revenue",
	FieldCurrency:       "currency",
	FieldTransactionID:  "transaction_id",
	FieldStatus:         "status",
	FieldClickTime:      "click_time",
	FieldInstallTime:    "install_time",
	FieldDeliveryID:     "delivery_id",
	FieldAttempt:        "attempt",
}

var fieldsByName = func() map[string]Field {
	m := make(map[string]Field, numFields)
	for f := Field(1); f < numFields; f++ {
		m[fieldNames[f]] = f
	}
	return m
}()

// FieldByName returns the Field for a macro name ("click_id" gives
// FieldClickID). Free params ("params.KEY") are not Fields.
func FieldByName(name string) (Field, bool) {
	f, ok := fieldsByName[name]
	return f, ok
}

// String returns the macro name, or "Field(N)" for an invalid Field.
func (f Field) String() string {
	if f.valid() {
		return fieldNames[f]
	}
	return "Field(" + strconv.Itoa(int(f)) + ")"
}

// Personal reports whether the field identifies a device or a person
// (device ids, IP address, email): the fields that render empty for
// a partner with privacy.require_consent when the event has no consent.
func (f Field) Personal() bool {
	switch f {
	case FieldIDFA, FieldIDFV, FieldGAID, FieldAndroidID, FieldIP, FieldEmail:
		return true
	}
	return false
}

// Fields returns every Field in declaration order, for building condition
// environments and documentation. The slice is fresh on each call.
func Fields() []Field {
	fs := make([]Field, 0, numFields-1)
	for f := Field(1); f < numFields; f++ {
		fs = append(fs, f)
	}
	return fs
}

func (f Field) valid() bool { return f > 0 && f < numFields }
