package dispatcher

import (
	"strconv"

	"github.com/postbackhq/postback/templates"
)

// Values fills the macro values of one delivery attempt from its event.
// Without consent, a partner that requires it sees no device ids, ip or
// email (the payload stored for such a delivery never had them either).
func (e *Event) Values(v *templates.Values, p *Partner, deliveryID string, attempt int) {
	v.Set(templates.FieldEventID, e.ID)
	v.Set(templates.FieldEvent, e.Name)
	v.SetTime(e.Timestamp)
	v.Set(templates.FieldAppID, e.AppID)
	v.Set(templates.FieldClickID, e.ClickID)
	v.Set(templates.FieldPartner, p.ID)
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
	if !p.RequireConsent || e.Consent.IsGranted() {
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
	v.Set(templates.FieldDeliveryID, deliveryID)
	if attempt > 0 {
		v.Set(templates.FieldAttempt, strconv.Itoa(attempt))
	}
	for k, val := range e.Params {
		v.SetParam(k, val)
	}
}

// redactedFor returns the event as it may be stored for partner p: without
// consent, a partner that requires it gets a copy with no device ids, ip or
// email, so they are never written to Redis for that delivery.
func (e *Event) redactedFor(p *Partner) *Event {
	if !p.RequireConsent || e.Consent.IsGranted() {
		return e
	}
	c := *e
	c.Device.IDFA, c.Device.IDFV, c.Device.GAID, c.Device.AndroidID, c.Device.IP = "", "", "", "", ""
	c.User.Email = ""
	return &c
}
