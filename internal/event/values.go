package event

import (
	"github.com/postbackhq/postback/templates"
)

// Values sets the macro values the event holds. Without personal, the
// device ids, IP address and email are left unset: they render empty, as
// for a partner that requires consent the user did not give.
func (e *Event) Values(v *templates.Values, personal bool) {
	v.Set(templates.FieldEventID, e.ID)
	v.Set(templates.FieldEvent, e.Name)
	v.SetTime(e.Timestamp)
	v.Set(templates.FieldAppID, e.AppID)
	v.Set(templates.FieldClickID, e.ClickID)
	a := &e.Attribution
	v.Set(templates.FieldCampaignID, a.CampaignID)
	v.Set(templates.FieldCampaign, a.Campaign)
	v.Set(templates.FieldAdgroupID, a.AdgroupID)
	v.Set(templates.FieldAdgroup, a.Adgroup)
	v.Set(templates.FieldCreativeID, a.CreativeID)
	v.Set(templates.FieldCreative, a.Creative)
	v.Set(templates.FieldSiteID, a.SiteID)
	v.Set(templates.FieldSub1, a.Sub1)
	v.Set(templates.FieldSub2, a.Sub2)
	v.Set(templates.FieldSub3, a.Sub3)
	v.Set(templates.FieldSub4, a.Sub4)
	v.Set(templates.FieldSub5, a.Sub5)
	d := &e.Device
	if personal {
		v.Set(templates.FieldIDFA, d.IDFA)
		v.Set(templates.FieldIDFV, d.IDFV)
		v.Set(templates.FieldGAID, d.GAID)
		v.Set(templates.FieldAndroidID, d.AndroidID)
		v.Set(templates.FieldIP, d.IP)
		v.Set(templates.FieldEmail, e.User.Email)
	}
	v.Set(templates.FieldUserAgent, d.UserAgent)
	v.Set(templates.FieldOS, d.OS)
	v.Set(templates.FieldOSVersion, d.OSVersion)
	v.Set(templates.FieldCountry, d.Country)
	v.Set(templates.FieldCustomerUserID, e.User.CustomerUserID)
	v.Set(templates.FieldRevenue, string(e.Revenue.Amount))
	v.Set(templates.FieldCurrency, e.Revenue.Currency)
	v.Set(templates.FieldTransactionID, e.TransactionID)
	v.Set(templates.FieldStatus, e.ConversionStatus())
	v.Set(templates.FieldClickTime, a.ClickTime)
	v.Set(templates.FieldInstallTime, a.InstallTime)
	for k, val := range e.Params {
		v.SetParam(k, val)
	}
}

// WithoutIdentifiers returns a copy of the event with no device ids, IP
// address or email: what is stored for a partner that requires consent
// the user did not give, so they are never written to Redis for it.
func (e *Event) WithoutIdentifiers() *Event {
	c := *e
	c.Device.IDFA, c.Device.IDFV, c.Device.GAID, c.Device.AndroidID, c.Device.IP = "", "", "", "", ""
	c.User.Email = ""
	return &c
}
